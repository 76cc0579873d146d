"""DC-DRL core: what every DC-DRL package shares and is small: protocol constants, argument checks, graph names,
training defaults, atomic files and strict JSON."""
