"""training/grade"""
