"""Services: the operations of the system, on top of the core and the store. Interfaces only call these."""
