"""`ecgzoo publish RUN_DIR --tag TAG --dest FOLDER`: a finished run as shippable pretrained weights."""

from __future__ import annotations

import argparse

HELP = "write a run's best weights, manifest (SHA-256, input contract, test figures) and model card for a plugin to ship"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--tag", required=True, help="what the weights were trained on, e.g. physionet2017 (name becomes MODEL:TAG)")
    p.add_argument("--dest", required=True, help="folder of a plugin package that declares its manifests (ecgzoo_pretrained hook)")
    p.add_argument("--command", required=True, help="the exact command that trained the run (recorded in the manifest)")
    p.add_argument("--license-weights", required=True, help="license of the weights, e.g. MIT")
    p.add_argument("--license-data", required=True, help="license of the training data, e.g. ODC-By-1.0")
    p.add_argument("--attribution", default="", help="citation the data's license asks for")
    p.add_argument("--units", default="mV", help="signal units the recordings must be in (default mV)")
    p.add_argument("--lead-names", default="", help="comma-separated description of the leads, in order")
    p.add_argument("--wall-seconds", type=float, default=None,
                   help="measured wall time of the whole training command (e.g. by /usr/bin/time, summed over a resumed run's "
                        "processes); default: the run's own timing of its last process")


def main(args: argparse.Namespace) -> int:
    from ecgzoo.serving.publish import publish_run

    path = publish_run(
        args.run_dir, args.tag, args.dest, command=args.command, license_weights=args.license_weights,
        license_data=args.license_data, data_attribution=args.attribution, units=args.units,
        lead_names=[n.strip() for n in args.lead_names.split(",") if n.strip()], wall_seconds=args.wall_seconds,
    )
    print(f"manifest: {path}")
    return 0
