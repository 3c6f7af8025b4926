"""Wall time and peak memory of the main job (README's first command) from a fresh folder, appended to a results file.

Each run is `/usr/bin/time -v .venv/bin/safe-mm-dpo pipeline --output_dir <a new temporary folder>`, as a newcomer runs
it; the row keeps the wall clock and peak RSS that `time -v` printed, the pipeline's own stage timings, the commit and
the date. Nothing is asserted: the README's five-minute goal is read off these rows.

    python bench/main_job_time.py --runs 2 --results bench/results/main_job_cpu_timings.json
"""
import argparse, datetime, json, os, re, subprocess, sys, tempfile
from pathlib import Path

from safe_mm_dpo.core import code_version

ROOT = Path(__file__).resolve().parents[1]


def seconds(wall: str) -> float:
    "Seconds of a `time -v` wall clock, h:mm:ss or m:ss."
    return sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(':'))))


def one_run() -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / 'main'
        r = subprocess.run(['/usr/bin/time', '-v', str(ROOT / '.venv' / 'bin' / 'safe-mm-dpo'), 'pipeline', '--output_dir', str(out),
                            '--progress', 'false'], cwd=ROOT, capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
        if r.returncode: sys.exit(f'the main job failed:\n{r.stderr[-3000:]}')
        wall = re.search(r'Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)', r.stderr).group(1)
        rss = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', r.stderr).group(1))
        stages = json.loads((out / 'report' / 'timings.json').read_text())
    code = code_version()                                   # the package's own record of its commit and uncommitted changes
    return {'commit': code.get('commit', 'unknown')[:7] + ('+uncommitted' if code.get('dirty') else ''), 'date': str(datetime.date.today()), 'wall_clock': wall,
            'wall_seconds': seconds(wall), 'max_rss_kbytes': rss, 'stages': stages}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=1); ap.add_argument('--results', default='bench/results/main_job_cpu_timings.json')
    a = ap.parse_args()
    path = ROOT / a.results
    data = json.loads(path.read_text()) if path.exists() else {'command': 'python bench/main_job_time.py', 'runs': []}
    for i in range(a.runs):
        row = one_run()
        data['runs'].append(row)
        path.write_text(json.dumps(data, indent=1) + '\n')
        print(f"run {i + 1}: {row['wall_clock']} wall, peak RSS {row['max_rss_kbytes'] / 2**20:.2f} GB, commit {row['commit']}", flush=True)
    walls = [seconds(r['wall_clock']) for r in data['runs']]
    print(f"{len(walls)} runs in {path.name}: {sum(w <= 300 for w in walls)} within 5 minutes; "
          f"wall {min(walls):.1f}–{max(walls):.1f} s (median {sorted(walls)[len(walls) // 2]:.1f} s)")


if __name__ == '__main__':
    main()
