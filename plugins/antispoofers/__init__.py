"""Built-in anti-spoofing plugins (kind ``antispoofer``): they tell live faces from photos and screens."""
