"""Compiled (numba) kernels behind the scripted bots and the minimax search.

Every kernel works on one game's padded board flattened to 1-D (``TronBatch.cells[g].ravel()``):
a square is free when its cell is 0 and an obstacle otherwise (wall, trail or head), and the four
neighbours of square ``v`` are ``v + offsets[d]`` with ``offsets = [-W, 1, W, -1]`` for
``Direction`` N, E, S, W (``W`` the padded width). The engine's one-cell wall border means a
neighbour of a free square or of a head is always on the board, so no kernel checks bounds.

All kernels are ``@njit(cache=True)``: the compiled code is written next to the sources
(``__pycache__``) on first use and loaded from there by later processes.
"""
