"""Channel adapters behind one interface (transport.py): Telegram, SMS, the simulator;
and how a message is cut and formatted for each."""
