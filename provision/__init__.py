"""provision: preflight and provisioning for OpenStack compute nodes."""

__version__ = "0.1.0"
