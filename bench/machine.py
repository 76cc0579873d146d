"""What every benchmark records about the machine it ran on (results are only comparable per machine)."""
from __future__ import annotations

import os
import platform
from typing import Any


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, Python/numpy/torch versions, load average at the time of the call."""
    info: dict[str, Any] = {'cpus': os.cpu_count(), 'cpu': cpu_model(), 'python': platform.python_version(),
                            'platform': platform.platform(), 'load_average': list(os.getloadavg())}
    try:
        import numpy
        info['numpy'] = numpy.__version__
    except ImportError:
        pass
    try:
        import torch
        info['torch'] = torch.__version__
        info['cuda'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info
