"""Drawing (pure functions, ``render``) and notebook widgets (``widgets``)."""
