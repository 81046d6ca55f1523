"""A trained selection for analysts and trigger deployment: :class:`Selection`,
applying it to ROOT files, and ONNX and bonsai-BDT lookup-table exports.
"""
