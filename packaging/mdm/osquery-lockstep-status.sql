-- Lockstep's sync state: one row per account lockstepd manages on a Mac.
-- Runs in osqueryi, osqueryd's schedule, Fleet and any osquery manager; it
-- reads lockstepd's status file through osquery's plist table (macOS).
-- If the StatusPlist key of lockstepd's configuration moves the file,
-- change the path below to match.
--   password_in_sync: true, false (a sync is needed) or unknown
--   state: in_sync, sync_needed, busy, locked, temporary, mfa_enroll, expiring,
--          not_linked or unknown; *_place: ok, behind, unknown, not_applicable
--   last_sync_result: done, failed (nothing changed), sync_needed, running,
--          incomplete (a keychain recovery to run again)
--   dates: seconds since 1970 (osquery shows plist dates so)
WITH status AS (
  SELECT key, subkey, value FROM plist
  WHERE path = '/Library/Application Support/Lockstep/status.plist'
),
fields AS (
  SELECT substr(subkey, 1, instr(subkey, '/') - 1) AS local_user,
         substr(subkey, instr(subkey, '/') + 1) AS field,
         value
  FROM status
  -- An empty dictionary is one row with an empty subkey: no account.
  WHERE key = 'accounts' AND instr(subkey, '/') > 0
)
SELECT
  local_user,
  MAX(CASE WHEN field = 'directoryUser' THEN value END) AS directory_user,
  CASE MAX(CASE WHEN field = 'passwordInSync' THEN value END)
    WHEN '1' THEN 'true' WHEN 'true' THEN 'true'
    WHEN '0' THEN 'false' WHEN 'false' THEN 'false'
    ELSE 'unknown'
  END AS password_in_sync,
  MAX(CASE WHEN field = 'state' THEN value END) AS state,
  MAX(CASE WHEN field = 'reason' THEN value END) AS reason,
  MAX(CASE WHEN field = 'places/directory' THEN value END) AS directory_place,
  MAX(CASE WHEN field = 'places/local' THEN value END) AS local_place,
  MAX(CASE WHEN field = 'places/keychain' THEN value END) AS keychain_place,
  MAX(CASE WHEN field = 'places/filevault' THEN value END) AS filevault_place,
  MAX(CASE WHEN field = 'lastSync/kind' THEN value END) AS last_sync_kind,
  MAX(CASE WHEN field = 'lastSync/result' THEN value END) AS last_sync_result,
  MAX(CASE WHEN field = 'lastSync/finishedAt' THEN value END) AS last_sync_at,
  MAX(CASE WHEN field = 'lastSync/error' THEN value END) AS last_sync_error,
  MAX(CASE WHEN field = 'passwordExpiresAt' THEN value END) AS password_expires_at,
  (SELECT value FROM status WHERE key = 'lockstepdVersion') AS lockstepd_version,
  (SELECT value FROM status WHERE key = 'directory' AND subkey = 'state') AS directory_state,
  (SELECT value FROM status WHERE key = 'directory' AND subkey = 'since') AS directory_since
FROM fields
GROUP BY local_user
ORDER BY local_user;
