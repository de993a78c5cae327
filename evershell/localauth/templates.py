"""The server's two HTML pages, kept inline so the package needs no data files."""

from __future__ import annotations

_STYLE = """
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f4f5f7;
         color: #1f2328; margin: 0; display: flex; min-height: 100vh; align-items: center;
         justify-content: center; }
  main { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; padding: 2rem;
         width: min(24rem, 90vw); box-shadow: 0 2px 8px rgba(0,0,0,.05); }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  .note { color: #57606a; font-size: .85rem; margin: 0 0 1.5rem; }
  label { display: block; font-size: .9rem; font-weight: 600; margin: .9rem 0 .3rem; }
  input { width: 100%; box-sizing: border-box; padding: .55rem .6rem; font-size: 1rem;
          border: 1px solid #d0d7de; border-radius: 6px; }
  .names { display: flex; gap: .8rem; }
  .names > div { flex: 1; }
  button { margin-top: 1.4rem; width: 100%; padding: .65rem; font-size: 1rem; border: 0;
           border-radius: 6px; background: #1f6feb; color: #fff; cursor: pointer; }
  .error { color: #cf222e; }
  code { background: #f6f8fa; padding: .1rem .3rem; border-radius: 4px; word-break: break-all; }
"""

SIGN_IN = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Evershell local</title>
<style>""" + _STYLE + """</style>
</head>
<body>
<main>
  <h1>Sign in as</h1>
  <p class="note">Local sign-in — development identity provider</p>
  {% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
  <form method="post" action="{{ action }}">
    {% for name, value in carried.items() %}
    <input type="hidden" name="{{ name }}" value="{{ value }}">
    {% endfor %}
    <label for="email">Email</label>
    <input id="email" name="email" type="email" required autofocus autocomplete="email"
           value="{{ email }}">
    <div class="names">
      <div><label for="first_name">First name</label>
        <input id="first_name" name="first_name" autocomplete="given-name"
               value="{{ first_name }}"></div>
      <div><label for="last_name">Last name</label>
        <input id="last_name" name="last_name" autocomplete="family-name"
               value="{{ last_name }}"></div>
    </div>
    <button type="submit">Continue</button>
  </form>
</main>
</body>
</html>
"""

MESSAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Evershell local</title>
<style>""" + _STYLE + """</style>
</head>
<body>
<main>
  <h1>{{ title }}</h1>
  <p class="note">Local sign-in — development identity provider</p>
  <p{% if is_error %} class="error" role="alert"{% endif %}>{{ message }}</p>
</main>
</body>
</html>
"""
