// Session cookies, passwords, throttling and CSRF (issue 5).
