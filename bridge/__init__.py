"""convai-bridge: a local daemon between game engines and Convai characters."""

__version__ = "0.1.0"
