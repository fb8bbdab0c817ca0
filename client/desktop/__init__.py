"""The visitor's desktop client (`expo-client`): a thin Panda3D shell over pure modules.

Pure (no Panda3D, tested directly): ``settings`` (what to connect as), ``wallet`` (the bank
credential on disk), ``pricing`` (money for people), ``shop`` (the purchase flow),
``chat`` (what the chat box sends), ``steering`` (keys to inputs, the follow camera),
``nearby`` (which booth the visitor stands at), ``mesh`` (procedural geometry as arrays),
``layout`` (what a hall is built of), ``atlas`` (packing images into one texture),
``screens`` (which screen and panels show).
Shells: ``bank_worker`` (the bank's HTTP calls on a thread of their own), ``local_server``
(an in-process ExpoServer on a thread), ``scene_*`` (Panda3D nodes), ``ui`` (DirectGUI),
``app`` (the ShowBase), ``screenshot`` (offscreen previews).
"""
