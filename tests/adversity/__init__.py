"""Bad input on the wire (raw sockets) against a pyk serve process; other clients must be unaffected."""
