"""One module per schema revision; never edit a revision that has landed, add a new one."""
