"""Ansible-style YAML inventories: load, merge ``provision`` settings, validate, select hosts."""

from provision.inventory.model import Inventory, InventoryHost
from provision.inventory.load import load_inventory

__all__ = ["Inventory", "InventoryHost", "load_inventory"]
