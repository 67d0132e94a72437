"""The Casewise application: service layer, CLI, settings. Qt lives only in ``app.ui``."""
