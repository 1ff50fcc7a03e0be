"""training/segment"""
