//! Serving the site over HTTP or HTTPS (used by `authbroker site serve`).
