"""The results table that the shell benchmarks print, and their verdict.

Each row is (contender, median s, baseline's name, baseline's median s, check, target text), or
None for a blank line. `check` is None for a baseline or information, else a function of
(median, ratio to the baseline) that says whether the target is met."""
import sys


def print_table(rows, smoke, name_width=34, base_width=14):
    """Prints the rows; exits 1 when a target is missed, unless `smoke`."""
    print(f"{'contender':<{name_width}} {'median s':>9} {'ratio':>7}  {'to':<{base_width}} target")
    failed = False
    for row in rows:
        if row is None:
            print()
            continue
        name, median, base_name, base, check, text = row
        if base is None:
            print(f"{name:<{name_width}} {median:>9.3f} {'':>7}  {'':<{base_width}} {text}")
            continue
        ratio = median / base
        if check is None:
            verdict = text
        else:
            met = check(median, ratio)
            verdict = f"{'ok' if met else 'MISSED'} ({text})"
            failed |= not met
        print(f"{name:<{name_width}} {median:>9.3f} {ratio:>6.2f}x  {base_name:<{base_width}} {verdict}")
    if failed and not smoke:
        sys.exit(1)
