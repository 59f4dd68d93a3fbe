"""Reports: submission (anonymous, confidential, identified), receipt codes, attachments."""
