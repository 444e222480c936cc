"""Account pages, one module per concern: sign-in, profile, practice staff, security."""
