"""Packaging for minsnr: every piece of metadata comes from settings.ini (the nbdev 2 convention)."""
from configparser import ConfigParser
import shlex

import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': 'Apache-2.0'}  # settings.ini's name → the SPDX license expression
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
lic = licenses[cfg['license']]


def split_reqs(key: str) -> list[str]:
    "Requirement strings of a settings.ini field (space separated, each may hold commas)."
    return shlex.split(cfg.get(key, ''))


setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    license_expression=lic,
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status']) - 1],  # status = the classifier's number
        'Intended Audience :: ' + cfg['audience'],
        'Natural Language :: ' + cfg['language'],
        'Programming Language :: Python :: 3',
    ],
    url=cfg['git_url'],
    project_urls={
        'Documentation': cfg['doc_host'] + cfg['doc_baseurl'],  # the book, as GitHub Pages publishes it
        'Paper': cfg['paper_url'],
        'Source': cfg['git_url'],
        'Issues': cfg['git_url'] + '/issues',
    },
    # minsnr.assets (no __init__.py) holds the shipped feature-classifier weights of minsnr.fid: a data package
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']) + [cfg['lib_path'] + '.assets'],
    include_package_data=True,
    package_data={cfg['lib_path'] + '.assets': ['*.safetensors']},
    install_requires=split_reqs('requirements'),
    extras_require={'dev': split_reqs('dev_requirements')},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={
        'console_scripts': cfg.get('console_scripts', '').split(),
        'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d'],
    },
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
)
