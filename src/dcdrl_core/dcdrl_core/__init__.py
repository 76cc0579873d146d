"""DC-DRL core: node runtime, interfaces, parameters, launch, CLI and learning blocks."""
