"""Email: templates in English and Spanish, the SMTP (or .eml file) sender, the send queue."""
