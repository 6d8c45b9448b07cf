//! Body codecs: JSON, form, base64 "sensitive params", query strings.
