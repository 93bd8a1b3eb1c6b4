"""The draw's child interpreter, `python -m bot.services.draw` (see worker.py)."""

from bot.services.draw.worker import child_main

if __name__ == "__main__":
    child_main()
