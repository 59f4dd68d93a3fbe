"""The reporter's side: their case's status and deadlines, and the conversation."""
