"""The chat page served at `GET /`: one self-contained HTML document."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runstream</title></head>
<body><h1>runstream</h1><p>The chat page arrives shortly.</p></body></html>
"""
