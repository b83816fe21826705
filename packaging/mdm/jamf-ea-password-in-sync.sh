#!/bin/sh
# Jamf Pro computer extension attribute "Lockstep password in sync"
# (Data Type: String, Input Type: Script).
#
# Prints <result>true</result> when every account lockstepd manages on this
# Mac holds the directory's password in every place, <result>false</result>
# when one of them needs a sync, and <result>unknown</result> when lockstepd
# has not said: not installed, no status file yet, or no account whose state
# it knows (an operation running, the directory not heard from yet). Jamf Pro
# stores the text between <result> and </result> (Jamf Pro Documentation,
# "Extension Attribute Input Types").
#
# Smart group of Macs whose password is out of step:
#   Lockstep password in sync | is | false
#
# It reads lockstepd's status file, which is owned by root, readable by
# everyone and holds no secret. If the StatusPlist key of lockstepd's
# configuration moves it, change STATUS_PLIST below to match.
STATUS_PLIST="/Library/Application Support/Lockstep/status.plist"
STATUS_PLIST="${LOCKSTEP_STATUS_PLIST:-$STATUS_PLIST}"

# read_key prints the value at a key path written as PlistBuddy writes one
# (keys joined by colons; a boolean prints as true or false), and fails when
# the file or the key is missing.
read_key() {
	if [ -x /usr/libexec/PlistBuddy ]; then
		/usr/libexec/PlistBuddy -c "Print :$1" "$STATUS_PLIST" 2>/dev/null
	else
		# Not a Mac (this script's tests run on Linux): Python's plistlib
		# reads the same file and answers the same way.
		python3 -c '
import plistlib, sys
with open(sys.argv[1], "rb") as f:
    v = plistlib.load(f)
for k in sys.argv[2].split(":"):
    v = v[k]
print({True: "true", False: "false"}.get(v, v) if isinstance(v, bool) else v)
' "$STATUS_PLIST" "$1" 2>/dev/null
	fi
}

result=unknown
if [ -r "$STATUS_PLIST" ] && value=$(read_key passwordInSync); then
	case "$value" in
	true | 1) result=true ;;
	false | 0) result=false ;;
	esac
fi
echo "<result>$result</result>"
