"""Shared helpers at the bottom of the house: files written atomically and the output-folder marker, quiet
libraries, and the process pool that runs the function it is given.
"""
