"""Is synth's expression learnable but not trivial?  A linear sanity check.

    python bench/synth_learnability.py      # ~15 s

10 subjects x 7 classes x 2 clips (seed 1, 320x245); each clip's apex frame
(and its first, neutral frame) aligned on the ground-truth eye centres to
48x48; dual ridge regression, subject-independent 5-fold cross-validation.
Prints accuracy from the apex frame alone (identity still in the way) and from
apex minus neutral (identity mostly cancelled).  Chance is 1/7.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from fercli import faces  # noqa: E402
from fercli import synth as S  # noqa: E402
c = S.synthesize(subjects=10, clips_per_class=2, frames=(8,12), size=(320,245), seed=1)
def align(img, L, n=48):
    l, r = faces.eye_centres(L); mid=(l+r)/2; d=r-l; s=np.hypot(*d)
    ang=np.degrees(np.arctan2(d[1],d[0])); sc = (n*0.4)/s
    M = cv2.getRotationMatrix2D((float(mid[0]),float(mid[1])), ang, sc)
    M[:,2] += [n/2-mid[0], n*0.35-mid[1]]
    return cv2.warpAffine(img, M, (n,n)).astype(np.float32)/255
X_apex=[];X_diff=[];y=[];subj=[]
for i in range(c.n_clips):
    o0,o1=c.offsets[i],c.offsets[i+1]
    a=align(c.frames[o1-1],c.landmarks[o1-1]); n=align(c.frames[o0],c.landmarks[o0])
    X_apex.append((a-a.mean()).ravel()/ (a.std()+1e-6)); X_diff.append((a-n).ravel()); y.append(c.labels[i]); subj.append(c.subjects[i])
y=np.array(y); subj=np.array(subj)
def ridge_cv(X, lam=10.0):
    X=np.array(X); acc=[]
    us=np.unique(subj); folds=np.array_split(us,5)
    for f in folds:
        te=np.isin(subj,f); tr=~te
        Y=np.eye(7)[y[tr]]*2-1
        mu=X[tr].mean(0); A=X[tr]-mu
        W=np.linalg.solve(A@A.T+lam*np.eye(len(A)), Y)  # dual ridge
        pred=((X[te]-mu)@A.T@W).argmax(1)
        acc.append((pred==y[te]).mean())
    return np.mean(acc)
print('chance 0.143')
print('apex frame only, ridge on aligned 48x48 pixels, subject-independent 5-fold: %.3f' % ridge_cv(X_apex))
print('apex - first frame, same:  %.3f' % ridge_cv(X_diff))
