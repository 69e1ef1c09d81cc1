"""hdl/proto"""
