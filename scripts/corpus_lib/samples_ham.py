def samples():
    return []
