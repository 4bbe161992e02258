"""Rules shared by the staff forms, the CSV imports and the command line (no request code)."""
