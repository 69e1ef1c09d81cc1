"""hdl/common"""
