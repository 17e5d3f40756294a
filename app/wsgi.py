"""WSGI entry for production (`gunicorn app.wsgi:server`), configured by settings only."""

from app.webapp import create_app
from core.settings import get_settings

server = create_app(get_settings()).server
