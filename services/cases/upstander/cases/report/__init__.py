"""What the reporter gave, as the case file holds it: report, attachments, identity."""
