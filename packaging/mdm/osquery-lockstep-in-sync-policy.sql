-- Lockstep password in sync: a policy query (Fleet: a host passes when the
-- query returns a row). It returns one row when lockstepd says every account
-- it manages holds the directory's password in every place, and none when an
-- account needs a sync, when lockstepd has not said, or when there is no
-- status file. Change the path if the StatusPlist key moves the file.
SELECT 1 AS password_in_sync FROM plist
WHERE path = '/Library/Application Support/Lockstep/status.plist'
  AND key = 'passwordInSync' AND subkey = '' AND value IN ('1', 'true');
