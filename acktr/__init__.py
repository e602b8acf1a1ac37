"""ACKTR and K-FAC for any ``nn.Module`` and any gymnasium vector env (no Tron knowledge here)."""

from acktr.kfac import KFAC

__all__ = ["KFAC"]
