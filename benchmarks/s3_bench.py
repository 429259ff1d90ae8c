"""boto3 vs obstore against moto's S3 server: put/get of 1 KB, 1 MB and 100 MB objects.

Usage: ``.venv/bin/python benchmarks/s3_bench.py [--sizes 1K,1M,100M] [--libs boto3,obstore]``;
``--store-rss 1G`` instead puts and reads back a sparse file of that size through the s3store
plugin's ``S3BlobStore`` and reports resident memory before and at its peak.
Each (library, size) runs in a fresh subprocess so peak RSS belongs to that case alone; puts
stream from a file, gets stream into /dev/null (what the s3store plugin does). Prints one line
per case: wall seconds per operation, CPU seconds (user+system, all threads) and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devpi_core.config_fields import parse_size
from devpi_core.testing.s3server import CREDENTIALS, REGION, start_moto, stop

SIZES = {"1K": 1024, "1M": 1 << 20, "100M": 100 << 20}
REPEAT = {"1K": 200, "1M": 20, "100M": 2}
PART = 16 << 20


def _boto3(endpoint: str, bucket: str) -> tuple[object, object]:
    import boto3  # noqa: PLC0415 - only the library benchmarked
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415 - only the library benchmarked
    from botocore.config import Config  # noqa: PLC0415 - only the library benchmarked

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
        **CREDENTIALS,
    )
    transfer = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)

    def put(path: str, key: str) -> None:
        client.upload_file(path, bucket, key, Config=transfer)

    def get(key: str) -> int:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        total = 0
        while chunk := body.read(256 * 1024):
            total += len(chunk)
        return total

    return put, get


def _obstore(endpoint: str, bucket: str) -> tuple[object, object]:
    import obstore  # noqa: PLC0415 - only the library benchmarked
    from obstore.store import S3Store  # noqa: PLC0415 - only the library benchmarked

    store = S3Store(
        bucket,
        endpoint=endpoint,
        region=REGION,
        access_key_id=CREDENTIALS["aws_access_key_id"],
        secret_access_key=CREDENTIALS["aws_secret_access_key"],
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )

    def put(path: str, key: str) -> None:
        obstore.put(store, key, Path(path), chunk_size=PART, max_concurrency=4)

    def get(key: str) -> int:
        total = 0
        for chunk in obstore.get(store, key).stream(min_chunk_size=256 * 1024):
            total += len(chunk)
        return total

    return put, get


def run_case(lib: str, size_name: str, endpoint: str, bucket: str) -> dict[str, float]:
    """One library and size in this process; returns the measurements."""
    size, repeat = SIZES[size_name], REPEAT[size_name]
    put, get = (_boto3 if lib == "boto3" else _obstore)(endpoint, bucket)
    with tempfile.NamedTemporaryFile() as f:
        block = os.urandom(1 << 20)
        written = 0
        while written < size:
            f.write(block[: min(len(block), size - written)])
            written += min(len(block), size - written)
        f.flush()
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(repeat):
            put(f.name, f"{lib}/{size_name}/{i}")  # type: ignore[operator]
        t_put = (time.perf_counter() - t0) / repeat
        t1 = time.perf_counter()
        for i in range(repeat):
            assert get(f"{lib}/{size_name}/{i}") == size  # type: ignore[operator]
        t_get = (time.perf_counter() - t1) / repeat
        cpu = time.process_time() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"put_s": t_put, "get_s": t_get, "cpu_s": cpu, "peak_rss_mb": rss}


def store_rss(size: int, endpoint: str, bucket: str) -> dict[str, float | str]:
    """Put a sparse file of ``size`` through ``S3BlobStore`` and stream it back; peak RSS."""
    from devpi_core_s3store.blob_store import S3BlobStore  # noqa: PLC0415 - only the library benchmarked
    from devpi_core_s3store.settings import S3Settings  # noqa: PLC0415 - only the library benchmarked

    from devpi_core.specs import build  # noqa: PLC0415 - only the library benchmarked
    from devpi_core.testing.s3server import S3Server  # noqa: PLC0415 - only the library benchmarked

    store = S3BlobStore(build(S3Settings, S3Server(endpoint, None).settings(bucket)))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = "0" * 64  # the store trusts its caller's digest: no need to hash 1 GiB here
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.truncate(size)  # sparse: no disk, and zeroes compress nothing in transit either
    t0 = time.perf_counter()
    try:
        store.put_file(f.name, digest)
    except Exception as exc:  # noqa: BLE001 - moto may fail to complete very large uploads
        os.unlink(f.name)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"base_rss_mb": base, "peak_rss_mb": peak, "put_error": str(exc)[:200]}
    t_put = time.perf_counter() - t0
    read = 0
    t1 = time.perf_counter()
    with store.open(digest) as blob:
        while chunk := blob.read(256 * 1024):
            read += len(chunk)
    assert read == size
    t_get = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"base_rss_mb": base, "peak_rss_mb": peak, "put_s": t_put, "get_s": t_get}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1K,1M,100M")
    parser.add_argument("--libs", default="boto3,obstore")
    parser.add_argument("--store-rss", help="size of the file for the store's memory check")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case and args.case.startswith("rss:"):
        size = parse_size(args.case[4:])
        print(json.dumps(store_rss(size, args.endpoint, args.bucket)))
        return 0
    if args.case:
        lib, size_name = args.case.split(":")
        print(json.dumps(run_case(lib, size_name, args.endpoint, args.bucket)))
        return 0
    server = start_moto(str(Path(sys.executable).parent / "moto_server"))
    try:
        bucket = server.new_bucket()
        if args.store_rss:
            out = subprocess.run(
                [sys.executable, __file__, "--case", f"rss:{args.store_rss}",
                 "--endpoint", server.endpoint, "--bucket", bucket],
                check=True, capture_output=True, text=True, timeout=1800,
            ).stdout
            print(f"S3BlobStore {args.store_rss}: {out.strip()}")
            return 0
        for size_name in args.sizes.split(","):
            for lib in args.libs.split(","):
                out = subprocess.run(
                    [sys.executable, __file__, "--case", f"{lib}:{size_name}",
                     "--endpoint", server.endpoint, "--bucket", bucket],
                    check=True, capture_output=True, text=True, timeout=600,
                ).stdout
                got = json.loads(out)
                case = f"{lib:8} {size_name:>5} x{REPEAT[size_name]:<3}"
                print(
                    f"{case} put {got['put_s']*1000:8.1f} ms"
                    f"  get {got['get_s']*1000:8.1f} ms  cpu {got['cpu_s']:6.2f} s"
                    f"  peak RSS {got['peak_rss_mb']:6.1f} MB"
                )
    finally:
        assert server.process is not None
        stop(server.process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
