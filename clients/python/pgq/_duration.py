"""Durations written as Go writes them (time.Duration.String), so that the
error messages of Python and Go workers read alike: 500ms, 2s, 1m30s."""


def _trim(value, decimals):
    text = ("%." + str(decimals) + "f") % value
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def go_duration(seconds):
    """Format a number of seconds as Go's time.Duration.String does."""
    ns = int(round(float(seconds) * 1e9))
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return "%s%dns" % (sign, ns)
    if ns < 1000000:
        return sign + _trim(ns / 1e3, 3) + "\u00b5s"
    if ns < 1000000000:
        return sign + _trim(ns / 1e6, 6) + "ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    out = sign
    if hours:
        out += "%dh" % hours
    if hours or minutes:
        out += "%dm" % minutes
    return out + _trim(rest / 1e9, 9) + "s"
