"""The in-app inbox: short notices for one person, with a link to where the work is."""
