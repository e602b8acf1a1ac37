"""Sub-commands of the ``tron`` CLI, one module each (see ``arena.cli``)."""
