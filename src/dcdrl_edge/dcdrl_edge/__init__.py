"""DC-DRL edge device nodes."""
