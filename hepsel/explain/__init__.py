"""Explanations of trained models: SHAP (global and per candidate), LIME, and
global feature rankings by several methods.
"""
