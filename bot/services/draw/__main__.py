"""The draw's child interpreter, `python -m bot.services.draw` (see worker.py)."""

from bot.services.draw.worker import _child_main

if __name__ == "__main__":
    _child_main()
