"""The recovery study: scenarios, tasks and compile-once workers, the local or Dask run, the store that
resumes, the summary and the study's report.
"""
