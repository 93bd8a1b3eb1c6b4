"""The gettext catalogs, one folder per language: a package so that they ship inside every
installed copy of the service (flows.i18n reads them with importlib.resources)."""
