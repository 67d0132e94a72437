"""The desktop app: every Qt widget, window and worker lives here and only here."""
