"""An HTTP server on 127.0.0.1 serving a directory, for the tests that give
modules and roles a URL (the images of the provision role)."""

import http.server
import threading


def serve(directory, requests):
    """Serve `directory` on 127.0.0.1 (a free port: ``server_address[1]``) from
    a thread, appending each GET's path to `requests`; the caller shuts it down."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def do_GET(self):  # noqa: N802 - the name http.server calls
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd
