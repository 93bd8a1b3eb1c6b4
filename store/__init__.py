"""The data model: tables, migrations, the audit chain and database sessions."""
